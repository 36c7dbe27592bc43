//! PL011 model (filled in with the guests issue).
