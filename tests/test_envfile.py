import pytest

from erpprov.errors import ErpprovError
from erpprov.load.envfile import load_env_file, parse_env
from tests.helpers import erpprov, write_project


def test_forms_people_write():
    text = """
# a comment
PLAIN=value
export EXPORTED=yes
SPACED = padded
DOUBLE="two words # not a comment"
ESCAPED="line\\nnext \\"quoted\\""
HASH=pa#ss
COMMENTED=value # trailing comment
EMPTY=
"""
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "DOUBLE": "two words # not a comment",
        "ESCAPED": 'line\nnext "quoted"',
        "HASH": "pa#ss",
        "COMMENTED": "value",
        "EMPTY": "",
    }


def test_single_quotes_are_raw():
    assert parse_env(r"A='a\nb'") == {"A": r"a\nb"}


@pytest.mark.parametrize(
    ("text", "line"),
    [("not a pair", 1), ("A=1\n1BAD=2", 2), ('A="open', 1), ("A='x' junk", 1)],
)
def test_bad_lines_name_file_and_line(text, line):
    with pytest.raises(ErpprovError) as err:
        parse_env(text, "proj/.env")
    assert err.value.location.file == "proj/.env"
    assert err.value.location.line == line


def test_a_byte_order_mark_is_not_part_of_the_first_name():
    """Editors on Windows save UTF-8 with a BOM; the first line is still KEY=VALUE."""
    assert parse_env("\ufeffPOSTGRES_PASSWORD=s3cret\nB=2\n") == {"POSTGRES_PASSWORD": "s3cret", "B": "2"}


def test_a_byte_order_mark_in_a_file_on_disk_is_accepted(tmp_path):
    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfA=1\n")
    assert load_env_file(tmp_path / ".env") == {"A": "1"}


def test_a_key_set_twice_is_reported_with_both_lines():
    warnings: list[str] = []
    parsed = parse_env("A=first\nB=x\n# c\nexport A=second\n", "proj/.env", warn=warnings.append)
    assert parsed["A"] == "second"  # as docker compose and python-dotenv read it
    assert warnings == ["proj/.env:4: A is set again (first at line 1); the value of line 4 is used"]


def test_a_key_set_twice_warns_on_stderr_through_the_cli(tmp_path):
    write_project(tmp_path, "- {name: p, hosts: dev}\n", env_file="A=1\nA=2\n")
    result = erpprov(tmp_path, "validate")
    assert result.returncode == 0, result.stderr
    assert "warning: .env:2: A is set again (first at line 1)" in result.stderr.replace(str(tmp_path) + "/", "")


def test_a_fifo_or_a_huge_file_in_place_of_env_is_a_clean_error(tmp_path):
    import os

    from erpprov.errors import ErpprovError
    from erpprov.load.envfile import MAX_BYTES, load_env_file

    fifo = tmp_path / ".env"
    os.mkfifo(fifo)  # reading it would wait for a writer for ever
    with pytest.raises(ErpprovError, match="not a regular file"):
        load_env_file(fifo)
    big = tmp_path / "big.env"
    big.write_bytes(b"A=" + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(ErpprovError, match="larger than"):
        load_env_file(big)
