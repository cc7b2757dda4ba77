"""``python -m geoaware`` runs the command line, as the ``geoaware`` script does."""

from geoaware.cli import main

if __name__ == "__main__":
    main()
