//! The Amazon connector against the stateful Amazon fake (`omnistock-sandbox`).
