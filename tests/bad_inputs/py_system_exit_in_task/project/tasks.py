import sys

import daglake


@daglake.task("staging.quits")
def quits(ctx):
    sys.exit(4)


@daglake.task("staging.fine")
def fine(ctx):
    return ctx.sql("SELECT 1 AS x")
