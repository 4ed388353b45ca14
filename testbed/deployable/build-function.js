#!/usr/bin/env node
// Reads, validates and builds a DigitalOcean Functions project with the deployer library the
// doctl serverless plugin is forked from, then runs the deployer's own deploy step against a
// recording stand-in for the platform client: what would have been uploaded is captured,
// nothing leaves the machine.
//
//   node build-function.js <project-dir> <env-file> <out-dir> [--read-only]
//
// Needs __OW_API_HOST (a server answering GET /api/v1 with the platform's runtimes table):
// without it the deployer cannot tell which runtimes are valid. Prints one JSON document on
// stdout; the deployer's own progress messages go to stderr. Exit code 0 when the project
// validated (and, unless --read-only, built and "deployed"), 1 otherwise.
'use strict'

const fs = require('fs')
const path = require('path')
const deployer = require('@nimbella/nimbella-deployer')

const NAMESPACE = 'fn-local-check'

// The flags `doctl serverless deploy <dir>` passes when given no options.
const FLAGS = {
  verboseBuild: false,
  verboseZip: false,
  production: false,
  incremental: false,
  yarn: false,
  env: undefined,
  buildEnv: undefined,
  webLocal: undefined,
  include: undefined,
  exclude: undefined,
  remoteBuild: false,
  json: false
}

const feedback = {
  warn: (...args) => console.error(...args),
  progress: (...args) => console.error(...args)
}

// Stands in for the OpenWhisk client the deploy step talks to: nothing exists yet, every
// update is recorded and acknowledged the way the platform would.
function recordingClient (record) {
  const notFound = () => Promise.reject(Object.assign(new Error('not found'), { statusCode: 404 }))
  return {
    packages: {
      get: notFound,
      update: async ({ name, package: body }) => {
        record.packages.push({ name, ...body })
        return { name, namespace: NAMESPACE, version: '0.0.1' }
      }
    },
    actions: {
      get: notFound,
      update: async ({ name, action }) => {
        record.actions.push({ name, ...action })
        return { name, namespace: `${NAMESPACE}/${name.split('/')[0]}`, version: '0.0.1' }
      }
    }
  }
}

function describeActions (spec, projectDir) {
  const actions = []
  for (const pkg of spec.packages || []) {
    for (const action of pkg.actions || []) {
      const entry = {
        package: pkg.name,
        name: action.name,
        runtime: action.runtime,
        main: action.main,
        web: action.web,
        webSecure: action.webSecure,
        environment: action.environment,
        limits: action.limits,
        build: action.build,
        buildError: action.buildError ? String(action.buildError.message || action.buildError) : undefined
      }
      if (action.file && action.zipped) {
        entry.zip = path.resolve(projectDir, action.file)
        entry.zipSize = fs.statSync(entry.zip).size
      }
      actions.push(entry)
    }
  }
  return actions
}

function fail (result, error) {
  result.error = String((error && error.message) || error)
  process.stdout.write(JSON.stringify(result, null, 1) + '\n')
  process.exit(1)
}

async function main () {
  const [projectDir, envFile, outDir, mode] = process.argv.slice(2)
  if (!projectDir || !envFile || !outDir) {
    throw new Error('usage: build-function.js <project-dir> <env-file> <out-dir> [--read-only]')
  }
  const result = { ok: false }
  const runtimes = await deployer.initRuntimes()
  const includer = deployer.makeIncluder(undefined, undefined)
  const spec = await deployer.readProject(projectDir, envFile, undefined, includer, false, feedback, runtimes)
  if (spec.error) {
    fail(result, spec.error)
  }
  result.actions = describeActions(spec, projectDir)
  if (mode === '--read-only') {
    result.ok = true
    process.stdout.write(JSON.stringify(result, null, 1) + '\n')
    return
  }
  // What prepareToDeploy would have settled with real credentials (it asks the platform
  // whether the namespace exists, so it is not called).
  spec.flags = FLAGS
  spec.credentials = { namespace: NAMESPACE, ow: { apihost: process.env.savedOW_API_HOST || process.env.__OW_API_HOST } }
  const record = { packages: [], actions: [] }
  spec.owClient = recordingClient(record)

  const built = await deployer.buildProject(spec, runtimes)
  if (built.error) {
    fail(result, built.error)
  }
  result.actions = describeActions(built, projectDir)
  const buildErrors = result.actions.filter(a => a.buildError)
  if (buildErrors.length > 0) {
    fail(result, buildErrors.map(a => `${a.name}: ${a.buildError}`).join('; '))
  }
  const response = await deployer.deploy(built)
  if (response.failures && response.failures.length > 0) {
    fail(result, response.failures.map(f => f.message).join('; '))
  }
  // The exact bytes the platform would have received for each action.
  fs.mkdirSync(outDir, { recursive: true })
  result.uploaded = record.actions.map(action => {
    const { code, ...exec } = action.exec
    const uploaded = { name: action.name, exec, annotations: action.annotations, parameters: action.parameters, limits: action.limits }
    if (exec.binary) {
      uploaded.code = path.join(outDir, `${action.name.replace(/\//g, '-')}.zip`)
      fs.writeFileSync(uploaded.code, Buffer.from(code, 'base64'))
    }
    return uploaded
  })
  result.packages = record.packages
  result.ok = true
  process.stdout.write(JSON.stringify(result, null, 1) + '\n')
}

main().catch(error => fail({ ok: false }, error))
