from erpprov.launch import main

main()
