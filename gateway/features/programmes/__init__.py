"""Trade-security programmes (SSTL, CSI, Megaport, MRA): programme types and their lanes."""
