# Run by hand after daglake has built the warehouse: deletes old exports.
import sys

print("cleaning up")
sys.exit(3)
