import sys
import time

STARTED = time.monotonic()  # a --time-budget counts from here: TensorFlow's import included

from tuning.cli import main  # noqa: E402

sys.exit(main(started=STARTED))
