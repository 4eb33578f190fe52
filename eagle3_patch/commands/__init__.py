"""One module per command. Each reads top to bottom as that command's story and returns a
frozen result for the output layer (``render``); none prints, and only ``write`` writes."""
