// Starts `cogdsl lsp` (the command is the setting cogdsl.server) for .cog files and YAML files; the server
// itself leaves alone YAML files that are not cogdsl specs (no top-level `cogdsl:`).
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("cogdsl").get("server", ["cogdsl", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient("cogdsl", "cogdsl", server, {
    documentSelector: [
      { scheme: "file", language: "cog" },
      { scheme: "untitled", language: "cog" },
      { scheme: "file", language: "yaml" },
    ],
  });
  client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `cogdsl: could not start '${command} ${args.join(" ")}' (${error.message}); pip install 'cogdsl[lsp]', ` +
        "or set cogdsl.server to the command of the environment cogdsl is installed in");
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
