//! The kernel command line (`/chosen/bootargs`): `spevisor.<key>=<value>` words.

/// The value of `spevisor.<key>=` in `cmdline`, if present.
pub fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|w| {
        let rest = w.strip_prefix("spevisor.")?;
        let (k, v) = rest.split_once('=')?;
        (k == key).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn finds_parameters() {
        let c = "console=ttyAMA0 spevisor.test=undef spevisor.loops=10";
        assert_eq!(param(c, "test"), Some("undef"));
        assert_eq!(param(c, "loops"), Some("10"));
        assert_eq!(param(c, "missing"), None);
        assert_eq!(param("spevisor.test", "test"), None);
        assert_eq!(param("", "test"), None);
    }
}
