import sys

from lambdastack.cli.main import main

sys.exit(main())
