// leak_rust.rs - a Rust service loop for heapsnap's tracer and `leaks` verdict: a HashMap that is
// never pruned (the leak), a session whose header list only grows, and a list grown by a trait
// method the program implements on Vec<String>, all reached through a function inlined into main
// at -O; a bounded VecDeque cache and per-request Strings (churn); a
// thread; and a panic caught with catch_unwind every 50 iterations, unwinding through frames
// that allocated.  Prints one line that does not depend on tracing.
//   leak_rust ITERATIONS DELAY_MS
use std::collections::{HashMap, VecDeque};
use std::thread;
use std::time::Duration;

struct Session {
    headers: Vec<String>,
    seen: Vec<String>,
}

// A trait of the program's on a std type: its frames are the program's, whatever the type.
trait Remember {
    fn remember(&mut self, i: usize);
}

impl Remember for Vec<String> {
    fn remember(&mut self, i: usize) {
        self.push(format!("seen {:08}", i));               // SITE:trait
    }
}

fn handle(i: usize, history: &mut HashMap<usize, String>, sess: &mut Session, recent: &mut VecDeque<String>) {
    let request = format!("request {:08}", i).repeat(8);   // churn, of one size
    history.insert(i, "h".repeat(200));                    // SITE:leak
    sess.headers.push(format!("x-header-{}", i));          // SITE:session
    sess.seen.remember(i);
    recent.push_back(request.clone());                     // SITE:bounded
    if recent.len() > 50 {
        recent.pop_front();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let delay: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    std::panic::set_hook(Box::new(|_| {}));                // quiet panics
    let mut history = HashMap::new();
    let mut sess = Session { headers: Vec::new(), seen: Vec::new() };
    let mut recent = VecDeque::new();
    let worker = thread::spawn(|| {
        let v: Vec<Box<[u8; 64]>> = (0..1000).map(|_| Box::new([7u8; 64])).collect();
        v.iter().map(|b| b[0] as usize).sum::<usize>()
    });
    let mut caught = 0;
    for i in 0..n {
        for k in 0..10 {
            handle(i * 10 + k, &mut history, &mut sess, &mut recent);
        }
        let r = std::panic::catch_unwind(|| {
            let scratch = vec![1u8; 100];
            if i % 50 == 7 {
                panic!("boom");
            }
            scratch.len()
        });
        caught += r.is_err() as usize;
        thread::sleep(Duration::from_millis(delay));
    }
    println!("handled {} kept {} headers {} caught {} worker {}", n * 10, history.len(),
             sess.headers.len(), caught, worker.join().unwrap());
}
