#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
    if "SECRET_KEY" not in os.environ:
        # A checkout with no configuration is a developer's: manage.py runs in the embedded
        # default. A deployment sets SECRET_KEY, and then DEBUG stays off unless it says otherwise.
        os.environ.setdefault("DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
