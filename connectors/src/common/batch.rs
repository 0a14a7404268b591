//! Splitting work into marketplace-sized batches.

/// Splits `items` into consecutive chunks of at most `max` (at least 1) items, keeping order, so
/// outcomes can be re-assembled by position.
pub fn batches<T>(items: &[T], max: usize) -> std::slice::Chunks<'_, T> {
    items.chunks(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_order_and_size() {
        let items: Vec<u32> = (0..53).collect();
        let sizes: Vec<usize> = batches(&items, 25).map(<[u32]>::len).collect();
        assert_eq!(sizes, [25, 25, 3]);
        let flat: Vec<u32> = batches(&items, 25).flatten().copied().collect();
        assert_eq!(flat, items);
        assert_eq!(batches(&items, 0).count(), 53, "0 means 1");
        assert_eq!(batches::<u32>(&[], 25).count(), 0);
    }
}
