"""Weight sharing (ENAS): one supernet whose slices are the children; each child is
scored on the current shared weights and then trains them for a few steps."""
