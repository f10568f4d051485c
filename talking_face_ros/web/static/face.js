// The browser face: draws the rig from rig.bin, posed by the frames the server pushes on /ws.
//
// The 52 shapes are blended on the CPU: WebGL1 offers as few as 8 vertex attributes, far too
// few for morph targets, and a sparse multiply-add over the moved vertices (about 36 000 for
// the robot face) takes well under a millisecond. Normals are recomputed from the posed mesh and
// the lighting is the offline renderer's (talking_face_ros/render/frame.py): per-vertex ambient,
// key and fill Lambert terms and a soft highlight, two-sided, so both draw the same picture.
// The camera is fitted like the offline default camera (the face region, 4% margin), for the
// canvas's own size.
//
// window.faceState reports progress to tests and kiosk scripts:
//   {rig, connected, received, lastIndex, drawnIndex, error}.
"use strict";

(function () {
  const MAGIC = "TFRIG1";
  const NUM_SHAPES = 52;
  const canvas = document.getElementById("face");
  const statusLine = document.getElementById("status");
  const state = (window.faceState = {
    rig: false, connected: false, received: 0, lastIndex: -1, drawnIndex: -1, error: null,
  });

  function setStatus(text) {
    statusLine.textContent = text;
    document.title = "face: " + text;
  }

  function fail(message) {
    state.error = message;
    setStatus(message);
  }

  // -- rig.bin (format: talking_face_ros/web/server.py) ------------------------------------------

  const ARRAY_TYPES = { float32: Float32Array, uint32: Uint32Array, int16: Int16Array, uint8: Uint8Array };

  function parseRig(buffer) {
    // Typed arrays read the platform's byte order; every browser platform is little-endian.
    const bytes = new Uint8Array(buffer);
    if (String.fromCharCode.apply(null, bytes.subarray(0, MAGIC.length)) !== MAGIC) {
      throw new Error("rig.bin: not a face rig");
    }
    const headerLength = new DataView(buffer).getUint32(8, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
    if (header.version !== 1 || header.shape_names.length !== NUM_SHAPES) {
      throw new Error("rig.bin: unsupported version or shape list");
    }
    const rig = { header: header };
    for (const name of Object.keys(header.arrays)) {
      const [offset, dtype, count] = header.arrays[name];
      rig[name] = new ARRAY_TYPES[dtype](buffer, offset, count);
    }
    // Where each shape's run of sparse deltas starts.
    rig.deltaStart = new Uint32Array(NUM_SHAPES + 1);
    for (let s = 0; s < NUM_SHAPES; s++) rig.deltaStart[s + 1] = rig.deltaStart[s] + header.delta_counts[s];
    return rig;
  }

  // -- WebGL ------------------------------------------------------------------------------------

  const FACE_VS = `
    attribute vec3 position;
    attribute vec3 normal;
    attribute vec3 albedo;
    uniform vec3 center;
    uniform float cameraDistance;
    uniform vec2 focal;      // 2 f / W, 2 f / H
    uniform vec2 axis;       // optical axis in clip units: 2 ox / W - 1, 1 - 2 oy / H
    uniform vec2 depthMap;   // z_clip = depthMap.x * depth + depthMap.y
    uniform vec3 keyLight;
    uniform vec3 fillLight;
    uniform vec3 halfVector;
    uniform vec4 terms;      // ambient, key, fill, specular
    uniform float shininess;
    varying vec3 color;
    void main() {
      vec3 q = position - center;
      float depth = cameraDistance - q.z;  // the camera looks down -z from +z
      gl_Position = vec4(focal.x * q.x + axis.x * depth, focal.y * q.y + axis.y * depth,
                         depthMap.x * depth + depthMap.y, depth);
      float len = length(normal);
      vec3 n = len > 0.0 ? normal / len : normal;
      if (n.z < 0.0) n = -n;  // two-sided: lids and lips have no consistent winding
      float diffuse = terms.x + terms.y * max(dot(n, keyLight), 0.0) + terms.z * max(dot(n, fillLight), 0.0);
      float spec = terms.w * pow(max(dot(n, halfVector), 0.0), shininess);
      color = clamp(albedo * diffuse + spec, 0.0, 1.0);
    }`;
  const FACE_FS = `
    precision mediump float;
    varying vec3 color;
    void main() { gl_FragColor = vec4(color, 1.0); }`;
  const BACKGROUND_VS = `
    attribute vec2 corner;
    uniform vec3 top;
    uniform vec3 bottom;
    varying vec3 color;
    void main() {
      color = mix(top, bottom, 0.5 - 0.5 * corner.y);
      gl_Position = vec4(corner, 0.0, 1.0);
    }`;

  function compile(gl, vertexSource, fragmentSource) {
    const program = gl.createProgram();
    for (const [type, source] of [[gl.VERTEX_SHADER, vertexSource], [gl.FRAGMENT_SHADER, fragmentSource]]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    const locations = {};
    const attributes = gl.getProgramParameter(program, gl.ACTIVE_ATTRIBUTES);
    for (let i = 0; i < attributes; i++) {
      const name = gl.getActiveAttrib(program, i).name;
      locations[name] = gl.getAttribLocation(program, name);
    }
    const uniforms = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < uniforms; i++) {
      const name = gl.getActiveUniform(program, i).name;
      locations[name] = gl.getUniformLocation(program, name);
    }
    return { program: program, at: locations };
  }

  function createRenderer(gl, rig) {
    const header = rig.header;
    const vertexCount = header.num_vertices;
    const positions = new Float32Array(vertexCount * 3);
    const normals = new Float32Array(vertexCount * 3);
    const face = compile(gl, FACE_VS, FACE_FS);
    const background = compile(gl, BACKGROUND_VS, FACE_FS);

    let indices = rig.triangles;
    let indexType = gl.UNSIGNED_INT;
    if (vertexCount <= 65536) {
      indices = Uint16Array.from(rig.triangles);
      indexType = gl.UNSIGNED_SHORT;
    } else if (!(typeof WebGL2RenderingContext !== "undefined" && gl instanceof WebGL2RenderingContext)
               && !gl.getExtension("OES_element_index_uint")) {
      throw new Error("this browser cannot draw meshes of more than 65536 vertices");
    }
    const buffers = {};
    function buffer(name, target, data, usage) {
      buffers[name] = gl.createBuffer();
      gl.bindBuffer(target, buffers[name]);
      gl.bufferData(target, data, usage);
    }
    buffer("position", gl.ARRAY_BUFFER, positions.byteLength, gl.DYNAMIC_DRAW);
    buffer("normal", gl.ARRAY_BUFFER, normals.byteLength, gl.DYNAMIC_DRAW);
    buffer("albedo", gl.ARRAY_BUFFER, rig.colors, gl.STATIC_DRAW);
    buffer("corner", gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    buffer("index", gl.ELEMENT_ARRAY_BUFFER, indices, gl.STATIC_DRAW);

    function pose(weights) {
      positions.set(rig.neutral);
      const ids = rig.delta_vertex;
      const values = rig.delta_value;
      for (let s = 0; s < NUM_SHAPES; s++) {
        const w = weights[s];
        if (w === 0) continue;
        const k = w * header.delta_scales[s];
        for (let j = rig.deltaStart[s], end = rig.deltaStart[s + 1]; j < end; j++) {
          const p = 3 * ids[j];
          positions[p] += k * values[3 * j];
          positions[p + 1] += k * values[3 * j + 1];
          positions[p + 2] += k * values[3 * j + 2];
        }
      }
      // Area-weighted vertex normals: the sum of the unnormalised face normals around a vertex.
      normals.fill(0);
      const tri = rig.triangles;
      for (let t = 0; t < tri.length; t += 3) {
        const a = 3 * tri[t], b = 3 * tri[t + 1], c = 3 * tri[t + 2];
        const ux = positions[b] - positions[a], uy = positions[b + 1] - positions[a + 1], uz = positions[b + 2] - positions[a + 2];
        const vx = positions[c] - positions[a], vy = positions[c + 1] - positions[a + 1], vz = positions[c + 2] - positions[a + 2];
        const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
        for (const p of [a, b, c]) {
          normals[p] += nx;
          normals[p + 1] += ny;
          normals[p + 2] += nz;
        }
      }
      gl.bindBuffer(gl.ARRAY_BUFFER, buffers.position);
      gl.bufferSubData(gl.ARRAY_BUFFER, 0, positions);
      gl.bindBuffer(gl.ARRAY_BUFFER, buffers.normal);
      gl.bufferSubData(gl.ARRAY_BUFFER, 0, normals);
    }

    function attribute(program, name, size, type, normalized) {
      const location = program.at[name];
      gl.bindBuffer(gl.ARRAY_BUFFER, buffers[name]);
      gl.enableVertexAttribArray(location);
      gl.vertexAttribPointer(location, size, type, normalized, 0, 0);
      return location;
    }

    function draw(width, height) {
      const shading = header.shading;
      const view = header.view;
      const [umin, umax, vmin, vmax] = view.bounds;
      const m = view.margin;
      const f = Math.min(width * (1 - 2 * m) / Math.max(umax - umin, 1e-9),
                         height * (1 - 2 * m) / Math.max(vmax - vmin, 1e-9));
      const ox = width / 2 - f * (umin + umax) / 2;
      const oy = height / 2 - f * (vmin + vmax) / 2;
      const near = 0.25 * view.distance, far = 4.0 * view.distance;

      gl.viewport(0, 0, width, height);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);

      gl.disable(gl.DEPTH_TEST);
      gl.useProgram(background.program);
      gl.uniform3fv(background.at.top, shading.background_top);
      gl.uniform3fv(background.at.bottom, shading.background_bottom);
      const cornerAt = attribute(background, "corner", 2, gl.FLOAT, false);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      gl.disableVertexAttribArray(cornerAt);

      gl.enable(gl.DEPTH_TEST);
      gl.useProgram(face.program);
      gl.uniform3fv(face.at.center, view.center);
      gl.uniform1f(face.at.cameraDistance, view.distance);
      gl.uniform2f(face.at.focal, 2 * f / width, 2 * f / height);
      gl.uniform2f(face.at.axis, 2 * ox / width - 1, 1 - 2 * oy / height);
      gl.uniform2f(face.at.depthMap, (far + near) / (far - near), -2 * far * near / (far - near));
      gl.uniform3fv(face.at.keyLight, shading.key_light);
      gl.uniform3fv(face.at.fillLight, shading.fill_light);
      gl.uniform3fv(face.at.halfVector, shading.half_vector);
      gl.uniform4f(face.at.terms, shading.ambient, shading.key, shading.fill, shading.specular);
      gl.uniform1f(face.at.shininess, shading.shininess);
      const used = [
        attribute(face, "position", 3, gl.FLOAT, false),
        attribute(face, "normal", 3, gl.FLOAT, false),
        attribute(face, "albedo", 3, gl.UNSIGNED_BYTE, true),
      ];
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buffers.index);
      gl.drawElements(gl.TRIANGLES, indices.length, indexType, 0);
      for (const location of used) gl.disableVertexAttribArray(location);
    }

    return { pose: pose, draw: draw };
  }

  // -- drawing loop -----------------------------------------------------------------------------

  let rig = null;
  let gl = null;
  let renderer = null;
  let weights = new Float32Array(NUM_SHAPES);
  let weightsIndex = -1;
  let posed = false;
  let pending = false;

  function setUpGl() {
    const options = { antialias: true, alpha: false, depth: true };
    gl = canvas.getContext("webgl2", options) || canvas.getContext("webgl", options);
    if (!gl) throw new Error("WebGL is not available in this browser");
    renderer = createRenderer(gl, rig);
    posed = false;
  }

  function requestDraw() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(drawNow);
    }
  }

  function drawNow() {
    pending = false;
    if (!renderer || gl.isContextLost()) return;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    if (!posed) {
      renderer.pose(weights);
      posed = true;
    }
    renderer.draw(width, height);
    state.drawnIndex = weightsIndex;
  }

  window.addEventListener("resize", requestDraw);
  canvas.addEventListener("webglcontextlost", function (event) {
    event.preventDefault();  // lets the browser restore it
    renderer = null;
  });
  canvas.addEventListener("webglcontextrestored", function () {
    try {
      setUpGl();
      requestDraw();
    } catch (error) {
      fail(String(error.message || error));
    }
  });

  // -- frames -----------------------------------------------------------------------------------

  let retryMs = 250;

  function connect() {
    const url = new URL("ws", window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url.href);
    socket.onopen = function () {
      retryMs = 250;
      state.connected = true;
      setStatus("connected");
    };
    socket.onmessage = function (event) {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!frame || !Array.isArray(frame.w) || frame.w.length !== NUM_SHAPES) return;
      const next = Float32Array.from(frame.w, Number);
      if (next.some(function (x) { return !Number.isFinite(x); })) return;
      weights = next;
      weightsIndex = Number(frame.i);
      state.received += 1;
      state.lastIndex = weightsIndex;
      posed = false;
      requestDraw();
    };
    socket.onclose = function () {
      state.connected = false;
      setStatus("waiting for the face server");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(2 * retryMs, 2000);  // retries stay frequent: the robot may reboot
    };
  }

  // -- start ------------------------------------------------------------------------------------

  async function start() {
    let lastError = null;
    for (let attempt = 0; !rig; attempt++) {  // the server may not be up yet after a reboot
      try {
        const response = await fetch("rig.bin", { cache: "no-store" });
        if (!response.ok) throw new Error("rig.bin: HTTP " + response.status);
        rig = parseRig(await response.arrayBuffer());
      } catch (error) {
        lastError = error;
        setStatus("waiting for the face server (" + (lastError.message || lastError) + ")");
        await new Promise(function (resolve) { window.setTimeout(resolve, Math.min(250 * 2 ** attempt, 2000)); });
      }
    }
    try {
      setUpGl();
    } catch (error) {
      fail(String(error.message || error));
      return;
    }
    state.rig = true;
    setStatus("waiting for the face server");
    requestDraw();
    connect();
  }

  start();
})();
