"""``python -m ecs_executor.worker <envelope>``: open the sealed workload and exec the try's command."""

from __future__ import annotations

import sys

from ecs_executor.worker.unseal import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
