"""``python -m pykafka_c.cli``: the kafka-tools command line."""

import sys

from .kafka_tools import main

if __name__ == "__main__":
    sys.exit(main())
