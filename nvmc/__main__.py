from nvmc.cli import main

main()
