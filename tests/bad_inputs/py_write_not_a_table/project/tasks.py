import daglake


@daglake.task("staging.rows")
def rows(ctx):
    ctx.write("staging.rows", [(1, "a"), (2, "b")])
