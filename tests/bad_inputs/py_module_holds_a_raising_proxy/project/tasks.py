import daglake


class LazySettings:
    def __getattr__(self, name):
        raise RuntimeError("not configured yet")


settings = LazySettings()


@daglake.task("staging.ok")
def ok(ctx):
    return ctx.sql("SELECT 1 AS x")
