import daglake


@daglake.task("staging.count")
def count(ctx):
    return ctx.con.execute("SELECT 42 AS n").fetchone()[0]
