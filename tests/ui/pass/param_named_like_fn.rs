use redis_patterns::cached;

// A parameter may share the function's name; the `_refresh` companion must still call the
// function, not the parameter.
#[cached(key = "square:<square>", ttl = 60)]
async fn square(square: u64) -> u64 {
    square * square
}

fn main() {
    let _ = square_refresh(3);
}
