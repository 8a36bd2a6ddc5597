from songsim.cli import main

raise SystemExit(main())
