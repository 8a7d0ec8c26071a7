// pim_ops.cpp: the PIMeval-PIMbench reference run behind tests/test_dram_pim.py (PIMEVAL_MS, PIMEVAL_ROW_NS).
//
// One PIMeval device from pim_ops.cfg (PIM_DEVICE_BITSIMD_V_AP, 1 rank x 4 banks x 2 subarrays x 1024 rows
// x 65536 columns, DDR4_8Gb_x16_3200.ini). Each case allocates three objects of N = 262,144 elements,
// copies seeded operands in, runs one pimAdd / pimMul / pimXor, checks the result on the host, and prints
// pimShowStats() between "@@CASE <name>" / "@@END <name>" markers; pimResetStats() before each case,
// so each block holds exactly one PIM command. run_pimeval.sh parses the blocks.
//
// Build: g++ -std=c++17 -O3 -I<PIMeval>/libpimeval/src pim_ops.cpp -L<PIMeval>/libpimeval/lib -lpimeval
// Run:   ./pim_ops <path/to/pim_ops.cfg>
#include "libpimeval.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

static const uint64_t N = 262144;

template <typename T>
static bool runCase(const char* name, PimDataType type, char op, std::mt19937_64& rng)
{
  std::vector<T> a(N), b(N), got(N);
  for (uint64_t i = 0; i < N; ++i) {
    a[i] = static_cast<T>(rng());
    b[i] = static_cast<T>(rng());
    if (type == PIM_BOOL) { a[i] &= 1; b[i] &= 1; }
  }
  PimObjId oa = pimAlloc(PIM_ALLOC_AUTO, N, type);
  PimObjId ob = pimAllocAssociated(oa, type);
  PimObjId oc = pimAllocAssociated(oa, type);
  if (oa == -1 || ob == -1 || oc == -1) { std::printf("pim_ops: pimAlloc failed (%s)\n", name); return false; }
  if (pimCopyHostToDevice(a.data(), oa) != PIM_OK || pimCopyHostToDevice(b.data(), ob) != PIM_OK) return false;

  pimResetStats();
  PimStatus st = op == '+' ? pimAdd(oa, ob, oc) : op == '*' ? pimMul(oa, ob, oc) : pimXor(oa, ob, oc);
  if (st != PIM_OK) { std::printf("pim_ops: PIM command failed (%s)\n", name); return false; }
  std::printf("@@CASE %s\n", name);
  std::fflush(stdout);
  pimShowStats();
  std::fflush(stdout);
  std::printf("@@END %s\n", name);

  if (pimCopyDeviceToHost(oc, got.data()) != PIM_OK) return false;
  uint64_t bad = 0;
  for (uint64_t i = 0; i < N; ++i) {
    T want = op == '+' ? static_cast<T>(a[i] + b[i]) : op == '*' ? static_cast<T>(a[i] * b[i]) : static_cast<T>(a[i] ^ b[i]);
    bad += (got[i] != want);
  }
  std::printf("@@CHECK %s mismatches=%llu\n", name, (unsigned long long)bad);
  pimFree(oc); pimFree(ob); pimFree(oa);
  return bad == 0;
}

int main(int argc, char** argv)
{
  if (argc != 2) { std::fprintf(stderr, "usage: %s pim_ops.cfg\n", argv[0]); return 2; }
  if (pimCreateDeviceFromConfig(PIM_FUNCTIONAL, argv[1]) != PIM_OK) return 1;
  std::mt19937_64 rng(20240601);
  bool ok = true;
  ok &= runCase<int8_t>("add.int8", PIM_INT8, '+', rng);
  ok &= runCase<int8_t>("mul.int8", PIM_INT8, '*', rng);
  ok &= runCase<int32_t>("add.int32", PIM_INT32, '+', rng);
  ok &= runCase<int32_t>("mul.int32", PIM_INT32, '*', rng);
  ok &= runCase<uint8_t>("xor.bool", PIM_BOOL, '^', rng);
  pimDeleteDevice();
  return ok ? 0 : 1;
}
