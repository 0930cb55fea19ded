"""Click options shared by several commands, defined once."""

from __future__ import annotations

import click

overwrite_opt = click.option("--overwrite", is_flag=True,
                             help="Replace outputs that already exist.")
output_opt = click.option("-o", "--output", required=True, type=click.Path(dir_okay=True),
                          help="Output path.")
