from etl import main

main()
