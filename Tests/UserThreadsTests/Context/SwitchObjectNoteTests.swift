// The x86-64 switch object carries a GNU property note marking it IBT-compatible (an object
// without one turns IBT off for the whole executable when linked).
import Foundation
import Testing

@Suite(.timeLimit(.minutes(1)))
struct SwitchObjectNoteTests {
    @Test func theSwitchObjectIsMarkedIBTCompatible() throws {
        #if arch(x86_64)
            let readelf = ["/usr/bin/readelf", "/opt/swift/usr/bin/llvm-readelf", "/usr/bin/llvm-readelf"]
                .first { FileManager.default.isExecutableFile(atPath: $0) }
            guard let readelf else {
                print("skipped: no readelf (binutils) on this machine")
                return
            }
            let object = URL(fileURLWithPath: ChildProcess.uthreadsPath).deletingLastPathComponent()
                .appendingPathComponent("CUThreads.build/switch_x86_64_sysv_elf_gas.S.o").path
            guard FileManager.default.fileExists(atPath: object) else {
                print("skipped: no switch object at \(object) (a build layout this test does not know)")
                return
            }
            let r = try ChildProcess.run(readelf, ["-n", object])
            #expect(r.stdout.contains("NT_GNU_PROPERTY_TYPE_0") && r.stdout.contains("IBT"), "\(r.stdout)\(r.stderr)")
            #expect(!r.stdout.contains("SHSTK"), "shadow stacks cannot follow a stack switch: \(r.stdout)")
        #else
            print("skipped: the x86-64 switch is not built on this architecture")
        #endif
    }
}
