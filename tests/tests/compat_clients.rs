//! probe
use ringkeeper_tests::TestServer;
#[test]
fn probe() {
    let s = TestServer::start_with("4lw.commands.whitelist=*");
    println!("{}", s.connect_string());
    println!("{}", s.four_letter("envi"));
    std::thread::sleep(std::time::Duration::from_secs(600));
}
