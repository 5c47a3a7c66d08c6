"""Progress of the long commands, on standard error when it is a terminal and nowhere else.

A person who runs ``printapi import`` on a big file sees it move; a script, a pipe or a log
file gets no progress lines, only the commands' usual output.
"""

import sys

from tqdm import tqdm


def meter(description: str, total: int | None, unit: str, *, beside_output=False) -> tqdm:
    """A progress bar for one step of a command; use it as a context manager and update() it.

    tqdm draws nothing at all when its file is not a terminal (``disable=None``). A command
    whose own output goes to the terminal too says ``beside_output``, and draws nothing then:
    the bar would be drawn into its output.
    """
    return tqdm(
        desc=description,
        total=total,
        unit=unit,
        unit_scale=unit == "B",
        unit_divisor=1024,
        file=sys.stderr,
        disable=True if beside_output and sys.stdout.isatty() else None,
        mininterval=0.25,
        dynamic_ncols=True,
    )
