import { RunStore } from "@ripple/runtime"
import { runStoreContract } from "../helpers/runStoreContract.ts"

runStoreContract("memory", RunStore.layerMemory)
