import sys

from rnnlab.startup import main

if __name__ == "__main__":  # not when a spawned worker process (compare --jobs) imports it as __mp_main__
    sys.exit(main())
