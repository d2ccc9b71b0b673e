// A narrow C interface over libtorch for the orc-ai TORCH backend: load TorchScript
// modules from memory, compile TorchScript source, run either with plain tensors.
// Every entry point catches C++ exceptions and returns them as a malloc'd message.
#include <torch/script.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/jit.h>
#include <torch/library.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <link.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {

typedef struct {
    int32_t code;
    int32_t bits;
    int64_t ndim;
    const int64_t* shape;
    const uint8_t* data;
    size_t len;
} orc_tin;

typedef void (*orc_tout_cb)(void* ctx, int32_t code, int32_t bits, int64_t ndim, const int64_t* shape,
                            const uint8_t* data, size_t len);
typedef void (*orc_name_cb)(void* ctx, const char* name);
}

namespace {

// The interrupt flag of the run on this thread (a Rust AtomicBool, read atomically).
thread_local const uint8_t* g_interrupt = nullptr;

struct InterruptScope {
    explicit InterruptScope(const uint8_t* flag) { g_interrupt = flag; }
    ~InterruptScope() { g_interrupt = nullptr; }
};

// Called at the top of every loop body (inserted by `instrument`): a looping script or
// model stops soon after orc-ai sets the run's interrupt flag.
void check_interrupt() {
    if (g_interrupt && __atomic_load_n(g_interrupt, __ATOMIC_RELAXED))
        throw std::runtime_error("orc: the run was interrupted");
}

char* dup(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p) std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

std::string message(const std::exception& e) {
    if (auto c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
    return e.what();
}

at::ScalarType scalar_type(int32_t code, int32_t bits) {
    switch (code * 1000 + bits) {
        case 2032: return at::kFloat;
        case 2064: return at::kDouble;
        case 8: return at::kChar;
        case 16: return at::kShort;
        case 32: return at::kInt;
        case 64: return at::kLong;
        case 1008: return at::kByte;
        case 6008: return at::kBool;
        default: throw std::runtime_error("tensor type not supported by the TORCH backend (code " +
                                          std::to_string(code) + ", bits " + std::to_string(bits) + ")");
    }
}

void type_code(at::ScalarType t, int32_t* code, int32_t* bits) {
    switch (t) {
        case at::kFloat: *code = 2; *bits = 32; return;
        case at::kDouble: *code = 2; *bits = 64; return;
        case at::kChar: *code = 0; *bits = 8; return;
        case at::kShort: *code = 0; *bits = 16; return;
        case at::kInt: *code = 0; *bits = 32; return;
        case at::kLong: *code = 0; *bits = 64; return;
        case at::kByte: *code = 1; *bits = 8; return;
        case at::kBool: *code = 6; *bits = 8; return;
        default: throw std::runtime_error(std::string("the result has a tensor type RedisAI clients cannot store: ") +
                                          c10::toString(t));
    }
}

// Elements of a shape, refusing negative dimensions and overflow.
size_t elements(const orc_tin& in) {
    if (in.ndim < 0 || in.ndim > 64) throw std::runtime_error("tensor has an invalid number of dimensions");
    size_t n = 1;
    for (int64_t i = 0; i < in.ndim; ++i) {
        if (in.shape[i] < 0) throw std::runtime_error("tensor has a negative dimension");
        if (__builtin_mul_overflow(n, static_cast<size_t>(in.shape[i]), &n))
            throw std::runtime_error("tensor shape overflows");
    }
    return n;
}

// A tensor over `in`'s bytes where they lie (nothing copied), its length checked against its
// shape first: a length that disagrees with the shape must never reach a copy. The server's
// bytes need not be aligned for their type (a large blob is kept in the Redis string it came
// in): such a view is only ever copied (clone on the CPU, the copy to a GPU), never computed on.
at::Tensor view_of(const orc_tin& in) {
    size_t count = elements(in);
    auto type = scalar_type(in.code, in.bits);
    size_t size = c10::elementSize(type);
    if (in.len % size != 0 || in.len / size != count) throw std::runtime_error("tensor data does not match its shape");
    std::vector<int64_t> shape(in.shape, in.shape + in.ndim);
    if (in.len == 0) return at::empty(shape, type);
    return at::from_blob(const_cast<uint8_t*>(in.data), shape, at::TensorOptions().dtype(type));
}

// A CPU tensor of its own holding `in` (checked here as well as by orc-ai).
at::Tensor to_tensor(const orc_tin& in) {
    if (in.code == 1 && in.bits == 16) {
        // libtorch 1.13 has no uint16: widen to int32.
        size_t n = elements(in);
        if (in.len / 2 != n || in.len % 2 != 0) throw std::runtime_error("tensor data does not match its shape");
        auto t = at::empty(std::vector<int64_t>(in.shape, in.shape + in.ndim), at::kInt);
        auto* dst = t.data_ptr<int32_t>();
        const uint8_t* src = in.data;
        for (size_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, src + 2 * i, 2);
            dst[i] = v;
        }
        return t;
    }
    return view_of(in).clone();
}

void emit(const at::Tensor& t0, orc_tout_cb cb, void* ctx) {
    auto t = t0.detach().to(at::kCPU).contiguous();
    int32_t code, bits;
    type_code(t.scalar_type(), &code, &bits);
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    cb(ctx, code, bits, static_cast<int64_t>(shape.size()), shape.data(),
       static_cast<const uint8_t*>(t.data_ptr()), t.nbytes());
}

void emit_all(const c10::IValue& v, orc_tout_cb cb, void* ctx) {
    if (v.isTensor()) {
        emit(v.toTensor(), cb, ctx);
    } else if (v.isTuple()) {
        for (auto& e : v.toTupleRef().elements()) emit_all(e, cb, ctx);
    } else if (v.isTensorList()) {
        for (const at::Tensor& t : v.toTensorVector()) emit(t, cb, ctx);
    } else if (v.isList()) {
        for (const auto& e : v.toListRef()) emit_all(e, cb, ctx);
    } else if (v.isNone()) {
        // no outputs
    } else {
        throw std::runtime_error("the function returned something that is not a tensor, a list or a tuple of tensors");
    }
}

// CUDA device `device` (checked by device_of when its model or script was made).
c10::Device cuda(int32_t device) { return c10::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)); }

// The inputs of a run on `device` (-1: the CPU). On the CPU each is a copy the model may
// change freely. On a GPU the bytes go to the device straight from orc-ai's buffer: the view
// is only read, by the synchronous copy to the device (no host copy of every input first).
std::vector<at::Tensor> inputs_on(const orc_tin* ins, size_t n, int32_t device) {
    std::vector<at::Tensor> v;
    for (size_t i = 0; i < n; ++i) {
        if (device < 0) {
            v.push_back(to_tensor(ins[i]));
            continue;
        }
        bool widened = ins[i].code == 1 && ins[i].bits == 16;
        v.push_back((widened ? to_tensor(ins[i]) : view_of(ins[i])).to(cuda(device)));
    }
    return v;
}

// Diagnostics, off unless ORC_TORCH_TIMING is set in the shard's environment: each model run
// writes to stderr how long its parts took (inputs to the device, forward, outputs back),
// waiting for the device after each part, so that a run inside the server can be set beside
// the same parts timed elsewhere (scripts/gpu-check). The waits slow runs down a little.
bool timing_on() {
    static const bool on = [] {
        const char* v = std::getenv("ORC_TORCH_TIMING");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return on;
}

class PartTimer {
  public:
    explicit PartTimer(int32_t device) : device_(device), on_(timing_on()) {
        if (on_) last_ = std::chrono::steady_clock::now();
    }

    // The end of a part: wait for the device, then note the time.
    void lap() {
        if (!on_ || laps_ == 2) return;
        if (device_ >= 0) torch::cuda::synchronize(device_);
        auto now = std::chrono::steady_clock::now();
        us_[laps_++] = std::chrono::duration<double, std::micro>(now - last_).count();
        last_ = now;
    }

    // The last part ends here; one line for the run, named by its first input's shape.
    void report(const orc_tin* first) {
        if (!on_) return;
        auto now = std::chrono::steady_clock::now();
        double out = std::chrono::duration<double, std::micro>(now - last_).count();
        std::string shape;
        if (first && first->ndim >= 0 && first->ndim <= 64)
            for (int64_t i = 0; i < first->ndim; ++i) shape += (i ? "x" : "") + std::to_string(first->shape[i]);
        std::fprintf(stderr, "orc-torch-timing device=%d shape=%s in_us=%.1f forward_us=%.1f out_us=%.1f\n", device_,
                     shape.empty() ? "-" : shape.c_str(), us_[0], us_[1], out);
    }

  private:
    int32_t device_;
    bool on_;
    int laps_ = 0;
    double us_[2] = {0, 0};
    std::chrono::steady_clock::time_point last_;
};

struct Script {
    std::shared_ptr<torch::jit::CompilationUnit> cu;
};

// Every graph function of a compilation unit.
std::vector<std::shared_ptr<torch::jit::Graph>> graphs(torch::jit::CompilationUnit& cu) {
    std::vector<std::shared_ptr<torch::jit::Graph>> out;
    for (auto* f : cu.get_functions()) {
        if (auto* g = dynamic_cast<torch::jit::GraphFunction*>(f)) out.push_back(g->graph());
    }
    return out;
}

// Every graph of a module: its compilation unit's functions and its methods (often the
// same graphs), each once.
std::vector<std::shared_ptr<torch::jit::Graph>> module_graphs(torch::jit::Module& m) {
    auto cu = m._ivalue()->compilation_unit();
    auto out = graphs(*cu);
    for (const auto& method : m.get_methods()) out.push_back(method.graph());
    std::set<torch::jit::Graph*> seen;
    std::vector<std::shared_ptr<torch::jit::Graph>> unique;
    for (auto& g : out)
        if (seen.insert(g.get()).second) unique.push_back(g);
    return unique;
}

void insert_checks(torch::jit::Block* b, const c10::Symbol& sym) {
    for (auto* n : b->nodes()) {
        for (auto* sub : n->blocks()) insert_checks(sub, sym);
        if (n->kind() == c10::prim::Loop && !n->blocks().empty()) {
            auto* body = n->blocks()[0];
            if (body->nodes().begin() != body->nodes().end() && body->nodes().front()->kind() == sym)
                continue;  // checked already
            auto* check = b->owningGraph()->create(sym, 0);
            if (body->nodes().begin() != body->nodes().end())
                check->insertBefore(body->nodes().front());
            else
                body->appendNode(check);
        }
    }
}

void instrument(const std::vector<std::shared_ptr<torch::jit::Graph>>& gs) {
    static const auto sym = c10::Symbol::fromQualString("orc::check_interrupt");
    for (const auto& g : gs) insert_checks(g->block(), sym);
}

void collect_names(torch::jit::Block* b, std::set<std::string>& out) {
    for (auto* n : b->nodes()) {
        out.insert(n->kind().toQualString());
        for (auto* v : n->outputs()) {
            if (auto c = v->type()->cast<c10::ClassType>()) {
                auto name = c->name() ? c->name()->qualifiedName() : std::string();
                if (name.rfind("__torch__.torch.classes.", 0) == 0) out.insert("class " + name);
            }
        }
        for (auto* sub : n->blocks()) collect_names(sub, out);
    }
}

void report_names(const std::vector<std::shared_ptr<torch::jit::Graph>>& gs, orc_name_cb cb, void* ctx) {
    std::set<std::string> names;
    for (const auto& g : gs) {
        for (auto* v : g->inputs()) {
            if (auto c = v->type()->cast<c10::ClassType>()) {
                auto name = c->name() ? c->name()->qualifiedName() : std::string();
                if (name.rfind("__torch__.torch.classes.", 0) == 0) names.insert("class " + name);
            }
        }
        collect_names(g->block(), names);
    }
    for (const auto& n : names) cb(ctx, n.c_str());
}

}  // namespace

TORCH_LIBRARY(orc, m) {
    m.def(torch::schema("orc::check_interrupt() -> ()", c10::AliasAnalysisKind::CONSERVATIVE), &check_interrupt);
}

extern "C" {

void orc_torch_free_str(char* s) { std::free(s); }

const char* orc_torch_version() { return TORCH_VERSION; }

// OpenBLAS's, where this libtorch computes matrix products with it (Debian's does): its own
// pool, one thread per core that spins between calls, which at::set_num_threads leaves alone.
// Weak: null where no OpenBLAS is loaded (libtorch built with MKL, whose threads it sets).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

// libtorch's CUDA half is a library of its own (libtorch_cuda.so) that registers itself when
// loaded; a plugin that calls nothing in it does not keep it (the linker's --as-needed drops
// it), and libtorch then finds no CUDA, for good once it has looked. So load it from beside
// the libtorch_cpu.so in use, once, before anything asks for CUDA. A CPU build has none; a
// CUDA build on a node without the CUDA libraries fails to load it: both stay CPU-only.
static void load_cuda_part() {
    static std::once_flag once;
    std::call_once(once, [] {
        void* cpu = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
        if (cpu == nullptr) return;
        char dir[PATH_MAX + 1] = {0};
        if (dlinfo(cpu, RTLD_DI_ORIGIN, dir) == 0) {
            std::string path = std::string(dir) + "/libtorch_cuda.so";
            dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);  // kept loaded for the process
        }
        dlclose(cpu);
    });
}

void orc_torch_set_threads(int32_t intra, int32_t inter) {
    load_cuda_part();
    try {
        if (intra > 0) {
            at::set_num_threads(intra);
            if (openblas_set_num_threads) openblas_set_num_threads(intra);
        }
        if (inter > 0) at::set_num_interop_threads(inter);
    } catch (...) {
        // interop threads can be set once per process; later calls are ignored
    }
}

// The device of CUDA index `device` (-1: the CPU), refused when this libtorch cannot reach it.
c10::Device device_of(int32_t device) {
    if (device < 0) return c10::Device(at::kCPU);
    load_cuda_part();
    if (!torch::cuda::is_available()) {
        throw std::runtime_error("GPU requested but TORCH couldn't find CUDA (this libtorch is a CPU build, or "
                                 "this node has no usable GPU); use device CPU");
    }
    auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device >= count) {
        throw std::runtime_error("GPU:" + std::to_string(device) + " requested but this node has " +
                                 std::to_string(count) + " GPU(s)");
    }
    return cuda(device);
}

char* orc_torch_check_device(int32_t device) {
    try {
        device_of(device);
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

char* orc_torch_model_load(const uint8_t* blob, size_t len, int32_t device, void** out) {
    try {
        std::istringstream in(std::string(reinterpret_cast<const char*>(blob), len));
        auto m = std::make_unique<torch::jit::Module>(torch::jit::load(in, device_of(device)));
        m->eval();
        instrument(module_graphs(*m));
        *out = m.release();
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

void orc_torch_model_free(void* m) { delete static_cast<torch::jit::Module*>(m); }

// The operations (qualified node kinds) and C++ classes a model or script uses.
char* orc_torch_model_names(void* m, orc_name_cb cb, void* ctx) {
    try {
        report_names(module_graphs(*static_cast<torch::jit::Module*>(m)), cb, ctx);
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

char* orc_torch_script_names(void* s, orc_name_cb cb, void* ctx) {
    try {
        report_names(graphs(*static_cast<Script*>(s)->cu), cb, ctx);
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

char* orc_torch_model_run(void* m, const orc_tin* ins, size_t n, int32_t device, const uint8_t* interrupt,
                          orc_tout_cb cb, void* ctx) {
    try {
        InterruptScope scope(interrupt);
        c10::InferenceMode guard;
        PartTimer timer(device);
        std::vector<c10::IValue> args;
        for (auto& t : inputs_on(ins, n, device)) args.emplace_back(t);
        timer.lap();
        auto out = static_cast<torch::jit::Module*>(m)->forward(args);
        timer.lap();
        emit_all(out, cb, ctx);
        timer.report(n > 0 ? &ins[0] : nullptr);
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

char* orc_torch_script_compile(const char* src, void** out) {
    try {
        auto s = std::make_unique<Script>(Script{torch::jit::compile(std::string(src))});
        instrument(graphs(*s->cu));
        *out = s.release();
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

void orc_torch_script_free(void* s) { delete static_cast<Script*>(s); }

// Check that `name` exists; with `entry_point`, that its signature is
// (tensors: List[Tensor], keys: List[str], args: List[str]).
char* orc_torch_script_check(void* s, const char* name, int32_t entry_point) {
    try {
        auto cu = static_cast<Script*>(s)->cu;
        auto* f = cu->find_function(name);
        if (!f) return dup(std::string("Function ") + name + " does not exist in the given script.");
        if (!entry_point) return nullptr;
        const auto& schema = f->getSchema();
        if (schema.arguments().size() != 3)
            return dup(std::string("Wrong number of inputs in function ") + name + ". Expected 3 but was " +
                       std::to_string(schema.arguments().size()));
        auto tl = c10::ListType::ofTensors();
        auto sl = c10::ListType::ofStrings();
        const auto& a = schema.arguments();
        if (!a[0].type()->isSubtypeOf(*tl) || !a[1].type()->isSubtypeOf(*sl) || !a[2].type()->isSubtypeOf(*sl))
            return dup(std::string("Wrong inputs type in function ") + name +
                       ". Expected signature similar to: def " + name +
                       "(tensors: List[Tensor], keys: List[str], args: List[str])");
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

char* orc_torch_script_run(void* s, const char* name, const orc_tin* ins, size_t n, const char** keys, size_t nk,
                           const char** args, size_t na, int32_t entry_point, int32_t device,
                           const uint8_t* interrupt, orc_tout_cb cb, void* ctx) {
    try {
        InterruptScope scope(interrupt);
        c10::InferenceMode guard;
        auto cu = static_cast<Script*>(s)->cu;
        auto* f = cu->find_function(name);
        if (!f) return dup(std::string("Function ") + name + " does not exist in the given script.");
        auto ts = inputs_on(ins, n, device);
        std::vector<c10::IValue> stack;
        if (entry_point) {
            c10::List<at::Tensor> tl;
            for (auto& t : ts) tl.push_back(t);
            c10::List<std::string> kl, al;
            for (size_t i = 0; i < nk; ++i) kl.push_back(keys[i]);
            for (size_t i = 0; i < na; ++i) al.push_back(args[i]);
            stack = {tl, kl, al};
        } else {
            // Legacy call (scripts from SCRIPTSET): inputs positionally; a List[Tensor]
            // parameter takes the remaining inputs.
            const auto& params = f->getSchema().arguments();
            size_t next = 0;
            for (size_t p = 0; p < params.size() && next <= ts.size(); ++p) {
                if (params[p].type()->isSubtypeOf(*c10::ListType::ofTensors())) {
                    c10::List<at::Tensor> rest;
                    for (; next < ts.size(); ++next) rest.push_back(ts[next]);
                    stack.emplace_back(rest);
                } else if (next < ts.size()) {
                    stack.emplace_back(ts[next++]);
                }
            }
            if (next < ts.size())
                return dup(std::string("Wrong number of inputs provided to function ") + name + ": " +
                           std::to_string(ts.size()) + " given");
        }
        auto out = (*f)(stack);
        emit_all(out, cb, ctx);
        return nullptr;
    } catch (const std::exception& e) {
        return dup(message(e));
    } catch (...) {
        return dup("the TORCH backend failed with an unknown C++ exception");
    }
}

}  // extern "C"
