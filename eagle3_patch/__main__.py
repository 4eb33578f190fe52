from eagle3_patch.cli import main

raise SystemExit(main())
