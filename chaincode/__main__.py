"""`python -m chaincode serve ...`: see `chaincode.cli`."""

import sys

from chaincode.cli import main

sys.exit(main())
