//! orc's launcher conformance suite on this launcher: launch, status, exit codes, output
//! files, environment, cancellation and bad ids. Keep it passing as you fill in your
//! scheduler: `place` puts a step where your launcher runs it (inside a test job, say).

use orc_launcher_kit::testing::conformance;
use orc_site_launcher_template::TemplateLauncher;

#[test]
fn the_launcher_conforms() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    conformance::run(&conformance::Target {
        launcher: &TemplateLauncher::default(),
        dir: dir.path(),
        place: &|step| step,
    });
}
