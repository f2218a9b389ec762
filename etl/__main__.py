"""`python -m etl`: the same command as `aai-etl`."""

from etl import main

main()
