"""aai-etl: keep AssemblyAI transcripts in your own SQL database."""

__version__ = "0.1.0"


def main() -> None:
    """The aai-etl command. Ctrl-C and SIGTERM are handled from its first instant: importing the rest takes
    seconds on a loaded machine, and a signal meanwhile still ends it with one line (etl.store.interrupt)."""
    from etl.store import interrupt

    interrupt.install()
    from etl.cli import main as run

    run()
