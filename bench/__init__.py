"""Benchmarks: erpprov side by side with Ansible's community.postgresql and plain psql (`python -m bench`)."""
