from erpprov.cli import main

main()
