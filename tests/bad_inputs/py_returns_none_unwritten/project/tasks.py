import daglake


@daglake.task("staging.forgot")
def forgot(ctx):
    ctx.log.info("computed something, wrote nothing")
