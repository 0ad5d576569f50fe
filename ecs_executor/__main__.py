"""``python -m ecs_executor check``."""

import sys

from ecs_executor.cli import main

sys.exit(main())
