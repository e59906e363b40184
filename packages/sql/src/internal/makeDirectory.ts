/**
 * Creating a folder and its missing parents, one at a time.
 *
 * Node's `mkdirSync(path, { recursive: true })` takes an ENOENT from `mkdir` to mean a parent is
 * missing, creates the parent, finds it exists and tries again: forever where the file system answers
 * ENOENT below a parent that exists (procfs, as in `--data-dir /proc/x`). Written by hand because no
 * maintained library does this without the same loop.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** Creates `folder` and its missing parents; throws the first `mkdir` error, which names the folder it failed on. */
export const makeDirectory = (folder: string): void => {
  for (const missing of missingFolders(Path.resolve(folder))) {
    try {
      Fs.mkdirSync(missing)
    } catch (error) {
      // Another process created it in the meantime: what follows checks that it is a directory.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
  }
}

// The folders of `folder`'s path that do not exist, outermost first.
const missingFolders = (folder: string): ReadonlyArray<string> => {
  const missing: Array<string> = []
  for (let current = folder; !Fs.existsSync(current); current = Path.dirname(current)) {
    missing.unshift(current)
    if (Path.dirname(current) === current) break
  }
  return missing
}
