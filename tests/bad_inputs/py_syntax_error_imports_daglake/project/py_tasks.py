from daglake import task


@task("tmp.py_broken")
def py_broken(ctx):
    return ctx.sql("SELECT 1 AS x"
