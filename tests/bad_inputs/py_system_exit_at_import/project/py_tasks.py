import sys

import daglake

sys.exit(3)


@daglake.task("tmp.never")
def never(ctx):
    return ctx.sql("SELECT 1 AS x")
