"""``python -m ecs_executor.check``."""

import sys

from ecs_executor.check.report import main

sys.exit(main())
