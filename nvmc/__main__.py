from nvmc._entry import main

main()
