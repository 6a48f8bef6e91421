// symcxx.cc - a small C++ library for the symbolizer test: a member function whose name must
// come out demangled ("hs_symtest::Widget::frob(int)").  It uses std::string so that the
// library needs libstdc++ (which brings __cxa_demangle into the process, in a local scope when
// the library is opened RTLD_LOCAL).
#include <string>

#include "symtest.h"

extern "C" int hs_symcxx_line;
int hs_symcxx_line;

namespace hs_symtest {
struct Widget {
    std::string name;
    __attribute__((noinline)) void *frob(int x);
};

void *Widget::frob(int x)
{
    name += std::to_string(x);
    hs_symcxx_line = __LINE__ + 1;
    void *p = hs_symtest_pc();
    return p;
}
} // namespace hs_symtest

extern "C" void *hs_symcxx_entry(void)
{
    hs_symtest::Widget w;
    return w.frob(42);
}
