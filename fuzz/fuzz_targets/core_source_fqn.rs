//! `SourceFqn::parse`: never panics; what it accepts is canonical (parsing its own text gives
//! the same FQN, and `from_parts` of its parts agrees).
#![no_main]
use libfuzzer_sys::fuzz_target;
use logship_core::SourceFqn;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = SourceFqn::parse(s) {
        let again = SourceFqn::parse(f.as_str()).expect("canonical text re-parses");
        assert_eq!(again, f);
        let parts: Vec<_> = f.parts().map(|(t, n)| (t, n.to_string())).collect();
        let built = SourceFqn::from_parts(parts).expect("its own parts are valid");
        assert_eq!(built, f);
        assert_eq!(f.to_string(), f.as_str());
    }
});
