//! [`c_api!`](crate::c_api): a table of a C library's functions, looked up once when the
//! library is loaded at run time (the TensorFlow and LiteRT backends of `orc-ai`).

/// Declare a struct holding a C library's functions, looked up by name in a
/// `libloading::Library` (the calling crate depends on `libloading`). A missing symbol
/// refuses the library, naming the function and what the library was taken for.
///
/// ```
/// orc_dylib::c_api! {
///     /// The C library's `strlen`.
///     pub struct Libc("the C library") {
///         strlen = b"strlen\0": fn(*const std::ffi::c_char) -> usize;
///     }
/// }
/// # fn main() -> Result<(), String> {
/// // SAFETY: libc is loaded, and strlen has the signature declared above.
/// let lib = unsafe { libloading::Library::new("libc.so.6") }.map_err(|e| e.to_string())?;
/// let libc = unsafe { Libc::new(lib) }?;
/// assert_eq!(unsafe { (libc.strlen)(c"four".as_ptr()) }, 4);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! c_api {
    (
        $(#[$meta:meta])*
        $vis:vis struct $api:ident($what:literal) {
            $($field:ident = $sym:literal: fn($($arg:ty),* $(,)?) $(-> $ret:ty)?;)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $api {
            $(
                #[allow(missing_docs)]
                pub $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,
            )*
            _lib: ::libloading::Library,
        }

        impl $api {
            /// Look the functions up in `lib`, which stays loaded as long as this table.
            ///
            /// # Safety
            /// `lib` must be the library named above: the signatures are taken on trust.
            $vis unsafe fn new(lib: ::libloading::Library) -> Result<Self, String> {
                Ok($api {
                    $($field: unsafe {
                        *lib.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>($sym)
                            .map_err(|_| format!(
                                "it has no {} (not {})",
                                String::from_utf8_lossy(&$sym[..$sym.len() - 1]),
                                $what
                            ))?
                    },)*
                    _lib: lib,
                })
            }
        }
    };
}
