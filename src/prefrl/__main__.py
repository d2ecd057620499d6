import sys

from prefrl.cli.main import main

sys.exit(main())
