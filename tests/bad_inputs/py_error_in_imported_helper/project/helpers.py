import os

TOKEN = os.environ["DAGLAKE_TEST_UNSET_VARIABLE"]
