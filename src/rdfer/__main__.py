import sys

from rdfer.cli import main

sys.exit(main())
